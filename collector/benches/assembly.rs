//! `dialogue_assembly` with durable state (its local store: one synced log frame per batch
//! before the call returns): simulated call events (20% out of order, 5% duplicated) in
//! batches of 100 and 1,000, into a processor whose output is discarded. Also prints the state
//! kept per open dialogue. The process runs as `lumina` does: its allocator, and transparent
//! huge pages off.
//!
//! Command: `cargo bench -p lumina-collector --bench assembly`
//! Machine: see BENCHMARKS.md (2-core x86_64 VM); numbers there are from this command.
#![expect(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "benchmark setup and report"
)]

// The allocator the `lumina` binary ships with: the output is many small allocations, and
// what they cost is the allocator's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lumina_callsim::{SimConfig, generate, log_record};
use lumina_plugins::dialogue_assembly::AssemblyConfig;
use lumina_sdk::component::{
    Accepted, ComponentId, ComponentKind, ConsumeError, Consumer, CreateContext, DynConsumer,
    Processor,
};
use lumina_sdk::config::ConfigValue;
use lumina_sdk::proto::collector::logs::v1::ExportLogsServiceRequest;
use lumina_sdk::proto::logs::v1::{ResourceLogs, ScopeLogs};
use lumina_sdk::{Batch, Signal};

struct Discard;

#[async_trait]
impl Consumer for Discard {
    async fn consume(&self, _batch: Batch) -> Result<Accepted, ConsumeError> {
        Ok(Accepted::all())
    }
}

async fn processor(dir: &std::path::Path) -> Arc<dyn Processor> {
    let mut ctx = CreateContext::new(
        ComponentId::new("dialogue_assembly"),
        ComponentKind::Processor,
    );
    ctx.pipeline = Some("logs".into());
    lumina_sdk::component::processor::<AssemblyConfig>()
        .create(
            &ConfigValue::from(
                serde_json::json!({ "storage": { "directory": dir.display().to_string() } }),
            ),
            ctx,
            Signal::Logs,
            Arc::new(Discard) as DynConsumer,
        )
        .await
        .unwrap()
}

/// Batches of `size` events from `calls` simulated calls (seeded by `seed`).
fn batches(calls: usize, size: usize, seed: u64, never_end: f64) -> Vec<Batch> {
    let plan = generate(&SimConfig {
        calls,
        organizations: 50,
        seed,
        disorder: 0.2,
        duplicate: 0.05,
        never_end,
        ..SimConfig::default()
    });
    plan.sends
        .chunks(size)
        .map(|chunk| {
            Batch::logs(ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: chunk.iter().map(|s| log_record(&s.event)).collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            })
        })
        .collect()
}

fn state_per_open_dialogue(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let calls = 10_000;
    let input = batches(calls, 1000, 99, 1.0);
    rt.block_on(async {
        let p = processor(dir.path()).await;
        for b in input {
            p.consume(b).await.unwrap();
        }
        p.shutdown().await.unwrap();
    });
    // The store is a directory of a snapshot and logs.
    let file = std::fs::read_dir(dir.path())
        .unwrap()
        .flat_map(|e| std::fs::read_dir(e.unwrap().path()).unwrap())
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum::<u64>();
    eprintln!(
        "state per open dialogue: {} bytes on disk ({} open dialogues, {} bytes of store file)",
        file / calls as u64,
        calls,
        file
    );
}

fn assembly(c: &mut Criterion) {
    // As `lumina` does at start-up (see its main.rs).
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_thp_disable(true).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    state_per_open_dialogue(&rt);
    let seed = AtomicU64::new(1);
    let mut g = c.benchmark_group("dialogue_assembly_durable");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for size in [100usize, 1000] {
        g.throughput(Throughput::Elements(size as u64));
        g.bench_function(format!("batches_of_{size}"), |b| {
            b.iter_custom(|iters| {
                // Fresh events every measurement: duplicates of applied events cost less.
                let calls = (iters as usize * size) / 6 + 10;
                let mut input = batches(calls, size, seed.fetch_add(1, Ordering::SeqCst), 0.0);
                input.truncate(iters as usize);
                let dir = tempfile::tempdir().unwrap();
                rt.block_on(async {
                    let p = processor(dir.path()).await;
                    let start = Instant::now();
                    for b in input {
                        p.consume(b).await.unwrap();
                    }
                    let took = start.elapsed();
                    p.shutdown().await.unwrap();
                    took
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, assembly);
criterion_main!(benches);
