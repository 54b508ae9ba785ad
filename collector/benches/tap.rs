//! What a pipeline hop costs per batch of 100 log records, and what tapping adds: a direct
//! call, a counted hop (what sits between components) with no tap, with a tap on another
//! component, and tapped itself (a reader draining the tap, rate limit off), plus a
//! replaceable edge (`Slot`, what a config reload switches).
//!
//! Command: `cargo bench -p lumina-collector --bench tap`
//! Machine: see BENCHMARKS.md (2-core x86_64 VM); numbers there are from this command.
#![expect(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "benchmark setup and report"
)]

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lumina_collector::graph::observe::Counted;
use lumina_collector::graph::slot::Slot;
use lumina_collector::tap::{Direction, TapFilter, TapPoint, hub};
use lumina_sdk::component::{Accepted, ComponentKind, ConsumeError, Consumer, DynConsumer};
use lumina_sdk::{Batch, Signal};

struct Discard;

#[async_trait]
impl Consumer for Discard {
    async fn consume(&self, _batch: Batch) -> Result<Accepted, ConsumeError> {
        Ok(Accepted::all())
    }
}

fn hop() -> DynConsumer {
    let point = TapPoint::new(
        &"transform",
        ComponentKind::Processor,
        "logs",
        Direction::Output,
        Signal::Logs,
    );
    Counted::wrap(
        Arc::new(Discard),
        metrics::counter!("bench_items_total"),
        point,
    )
}

/// `iters` hops in one go on the runtime, timed.
fn timed(
    b: &mut criterion::Bencher<'_>,
    rt: &tokio::runtime::Runtime,
    c: &DynConsumer,
    batch: &Batch,
) {
    b.iter_custom(|iters| {
        rt.block_on(async {
            let t = std::time::Instant::now();
            for _ in 0..iters {
                c.consume(batch.clone()).await.unwrap();
            }
            t.elapsed()
        })
    })
}

fn filter(component: &str) -> TapFilter {
    TapFilter {
        component: glob::Pattern::new(component).unwrap(),
        inputs: false,
        rate: 1e15,
        sample: 1.0,
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let batch = lumina_sdk::testkit::logs_from(0, 1, 100);
    let mut g = c.benchmark_group("hop, 100 records a batch");
    g.throughput(Throughput::Elements(100));
    let direct: DynConsumer = Arc::new(Discard);
    g.bench_function("direct call", |b| timed(b, &rt, &direct, &batch));
    let counted = hop();
    g.bench_function("counted hop, no tap", |b| timed(b, &rt, &counted, &batch));
    let slot: DynConsumer = Slot::new(hop());
    g.bench_function("slot and counted hop, no tap", |b| {
        timed(b, &rt, &slot, &batch)
    });
    {
        let _elsewhere = hub().subscribe(filter("kinesis/*"), 64);
        g.bench_function("counted hop, a tap on another component", |b| {
            timed(b, &rt, &counted, &batch)
        });
    }
    {
        let mut sub = hub().subscribe(filter("transform"), 1024);
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        // The reader drains the tap on the runtime's other thread of work.
        let reader = rt.spawn(async move {
            loop {
                tokio::select! {
                    t = sub.batches.recv() => if t.is_none() { break },
                    _ = &mut stopped => break,
                }
            }
            sub
        });
        g.bench_function("counted hop, tapped", |b| timed(b, &rt, &counted, &batch));
        let _ = stop.send(());
        let sub = rt.block_on(reader).unwrap();
        eprintln!(
            "tapped: {} records dropped for a full channel",
            sub.dropped()
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
