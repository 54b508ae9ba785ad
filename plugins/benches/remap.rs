//! The cost per record of `filter`, `transform` and `redaction` on voice events: each
//! processor is handed 1,000-event batches (the events a `gp` receiver makes: ten attributes,
//! caller and called numbers among them, a body with a note in free text) and passes them to
//! a consumer that drops them. Building the batches is setup, not measured.
//!
//! Command: `cargo bench -p lumina-plugins --bench remap`
//! Machine: see BENCHMARKS.md; numbers there are from this command.
#![expect(clippy::unwrap_used, reason = "benchmark setup")]

use std::sync::Arc;

use async_trait::async_trait;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use lumina_sdk::component::{
    Accepted, ComponentId, ComponentKind, ConsumeError, Consumer, CreateContext, DynConsumer,
    Processor, processor,
};
use lumina_sdk::{Batch, Signal, testkit};

struct Discard;

#[async_trait]
impl Consumer for Discard {
    async fn consume(&self, _batch: Batch) -> Result<Accepted, ConsumeError> {
        Ok(Accepted::all())
    }
}

const RECORDS: usize = 1000;

fn events() -> Batch {
    let events: Vec<_> = (0..RECORDS)
        .map(|i| {
            let mut e = testkit::voice_event(
                &format!("e{i}"),
                &format!("call-{}", i / 8),
                "CALL_ANSWERED",
                i as i64,
            );
            e.organization_id = format!("org-{}", i % 40);
            e.caller_number = Some(format!("+44207{:08}", i * 7919 % 100_000_000));
            e.called_number = Some(format!("+1555{:08}", i * 104_729 % 100_000_000));
            e.data
                .insert("agentId".into(), format!("agent-{}", i % 50).into());
            e.data.insert(
                "note".into(),
                "caller asked for a call back after the transfer".into(),
            );
            e
        })
        .collect();
    testkit::voice_events(&events)
}

fn build<C: lumina_sdk::component::ProcessorConfig>(
    rt: &tokio::runtime::Runtime,
    yaml: &str,
) -> Arc<dyn Processor> {
    let cfg = lumina_sdk::config::parse_yaml(yaml, "bench").unwrap();
    rt.block_on(processor::<C>().create(
        &cfg,
        CreateContext::new(ComponentId::new("p"), ComponentKind::Processor),
        Signal::Logs,
        Arc::new(Discard) as DynConsumer,
    ))
    .unwrap()
}

fn remap(c: &mut Criterion) {
    use lumina_plugins::{
        filter::FilterConfig, redaction::RedactionConfig, transform::TransformConfig,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cases: Vec<(&str, Arc<dyn Processor>)> = vec![
        (
            "filter_drop_one_organization",
            build::<FilterConfig>(
                &rt,
                r#"drop: '.attributes."voice.organization.id" == "org-7"'"#,
            ),
        ),
        (
            "transform_rename_and_add",
            build::<TransformConfig>(
                &rt,
                "source: |\n  .attributes.tenant = del(.attributes.\"voice.organization.id\")\n  .attributes.pipeline = \"gp-main\"\n",
            ),
        ),
        ("redaction_last_digits", build::<RedactionConfig>(&rt, "{}")),
    ];
    let mut g = c.benchmark_group("remap");
    g.throughput(Throughput::Elements(RECORDS as u64));
    // What every case pays before its processor runs: a fresh decoded batch.
    g.bench_function("baseline_decoded_batch_to_discard", |b| {
        b.iter_batched(
            events,
            |batch| rt.block_on(Discard.consume(batch)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    for (name, p) in &cases {
        g.bench_function(*name, |b| {
            b.iter_batched(
                events,
                |batch| rt.block_on(p.consume(batch)).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, remap);
criterion_main!(benches);
