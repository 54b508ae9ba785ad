//! OTLP decode and encode of one 1,000-record logs batch (10 attributes, a 100-byte body each).
//!
//! Command: `cargo bench -p lumina-sdk --features testkit --bench otlp`
//! Machine: see BENCHMARKS.md (2-core x86_64 VM); numbers there are from this command.
#![expect(clippy::unwrap_used, reason = "benchmark setup")]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lumina_sdk::proto::common::v1::{AnyValue, any_value::Value};
use lumina_sdk::{Batch, Payload, Signal, testkit};

fn batch() -> Batch {
    let Payload::Logs(mut req) = testkit::logs(1, 1000).into_payload() else {
        unreachable!()
    };
    for r in req
        .resource_logs
        .iter_mut()
        .flat_map(|r| &mut r.scope_logs)
        .flat_map(|s| &mut s.log_records)
    {
        for i in 0..8 {
            r.attributes
                .push(testkit::kv(&format!("attr.{i}"), format!("value-{i}")));
        }
        r.body = Some(AnyValue {
            value: Some(Value::StringValue("x".repeat(100))),
        });
    }
    Batch::logs(req)
}

fn otlp(c: &mut Criterion) {
    let b = batch();
    let pb = b.encode_protobuf();
    let json = b.encode_json().unwrap();
    let mut g = c.benchmark_group("otlp_logs_1000");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("decode_protobuf", |x| {
        x.iter(|| Batch::decode_protobuf(Signal::Logs, black_box(&pb)).unwrap())
    });
    g.bench_function("encode_protobuf", |x| {
        x.iter(|| black_box(&b).encode_protobuf())
    });
    g.bench_function("decode_json", |x| {
        x.iter(|| Batch::decode_json(Signal::Logs, black_box(&json)).unwrap())
    });
    g.bench_function("encode_json", |x| {
        x.iter(|| black_box(&b).encode_json().unwrap())
    });
    g.bench_function("split_into_100s_and_merge", |x| {
        x.iter(|| Batch::merge(black_box(&b).clone().split(100)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, otlp);
criterion_main!(benches);
