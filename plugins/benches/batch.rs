//! The `batch` processor: 100-record batches from 8 concurrent senders merged into 8,192-record
//! batches and handed to a consumer that takes them at once.
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
    let input = testkit::logs(1, 100);
    let mut g = c.benchmark_group("batch_processor");
    const SENDS: usize = 8 * 128;
    g.throughput(Throughput::Elements((SENDS * 100) as u64));
    g.bench_function("merge_100s_into_8192", |x| {
        x.to_async(&rt).iter(|| async {
            let cfg = BatchConfig {
                send_batch_size: 8192,
                send_batch_max_size: 0,
                timeout: Duration::from_millis(200),
            };
            let p = Arc::new(BatchProcessor::new(cfg, "batch".into(), Arc::new(Discard)));
            let senders: Vec<_> = (0..8)
                .map(|_| {
                    let (p, input) = (p.clone(), input.clone());
                    tokio::spawn(async move {
                        for _ in 0..SENDS / 8 {
                            p.consume(input.clone()).await.unwrap();
                        }
                    })
                })
                .collect();
            for s in senders {
                s.await.unwrap();
            }
        })
    });
    g.finish();
}

criterion_group!(benches, batch_processor);
criterion_main!(benches);
