//! The same redaction logic three ways, on one 1,000-record logs batch (10 attributes each,
//! caller and called numbers among them): called directly in Rust, as a native plugin through
//! the C ABI, and as a WebAssembly component in wasmtime (epoch deadline on, as in
//! production). Each call takes the encoded batch and returns the encoded, redacted batch; a
//! second group gives the same forms a batch with no number to mask, which each answers
//! "unchanged" (nothing re-encoded or copied back).
//!
//! Command: `./scripts/build-plugins.sh && cargo bench -p lumina-collector --bench plugins`
//! Machine: see BENCHMARKS.md (2-core x86_64 VM); numbers there are from this command.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "benchmark setup")]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lumina_collector::plugin::PluginHost;
use lumina_sdk::config::ConfigValue;
use lumina_sdk::plugin::{EncodedOutcome, ProcessorPlugin};
use lumina_sdk::{Batch, Payload, Signal, testkit};

/// 1,000 records of ten attributes each: with `numbers`, the caller and called numbers among
/// them (every form masks them), else none (every form answers "unchanged").
fn batch(numbers: bool) -> Vec<u8> {
    let Payload::Logs(mut req) = testkit::logs(1, 1000).into_payload() else {
        unreachable!()
    };
    for (i, r) in req
        .resource_logs
        .iter_mut()
        .flat_map(|r| &mut r.scope_logs)
        .flat_map(|s| &mut s.log_records)
        .enumerate()
    {
        let (caller, called) = if numbers {
            (format!("+4420{:08}", i), format!("+1555{:07}", i))
        } else {
            ("withheld".to_owned(), "unknown".to_owned())
        };
        r.attributes
            .push(testkit::kv("voice.caller.number", caller));
        r.attributes
            .push(testkit::kv("voice.called.number", called));
        for a in 0..6 {
            r.attributes
                .push(testkit::kv(&format!("attr.{a}"), format!("value-{a}")));
        }
    }
    Batch::logs(req).encode_protobuf()
}

fn plugins_dir() -> PathBuf {
    std::env::var_os("LUMINA_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
            target.join("plugins")
        })
}

fn component(file: &str) -> ConfigValue {
    let path = plugins_dir().join(file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-plugins.sh first",
        path.display()
    );
    ConfigValue::from(serde_json::json!({ "path": path.display().to_string(), "instances": 1 }))
}

fn redaction(c: &mut Criterion) {
    let host = PluginHost::new();
    let wasm = host
        .load_processor("wasm", &component("redact_numbers.wasm"))
        .expect("load the WebAssembly plugin");
    let native = host
        .load_processor("native", &component("libredact_numbers.so"))
        .expect("load the native plugin");
    let mut direct = redact_numbers::RedactNumbers::init("").unwrap();
    for (group, numbers) in [
        ("redact_numbers_1000_records", true),
        ("redact_numbers_1000_records_unchanged", false),
    ] {
        let input = batch(numbers);
        for out in [
            wasm.process(Signal::Logs, &input).unwrap(),
            native.process(Signal::Logs, &input).unwrap(),
            direct.process_encoded(Signal::Logs, &input).unwrap(),
        ] {
            assert_eq!(
                matches!(out, EncodedOutcome::Replaced(_)),
                numbers,
                "every form masks the numbers, and answers unchanged without them"
            );
        }
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(1000));
        g.bench_function("rust_in_process", |b| {
            b.iter(|| {
                direct
                    .process_encoded(Signal::Logs, black_box(&input))
                    .unwrap()
            })
        });
        g.bench_function("native_plugin", |b| {
            b.iter(|| native.process(Signal::Logs, black_box(&input)).unwrap())
        });
        g.bench_function("wasm_plugin", |b| {
            b.iter(|| wasm.process(Signal::Logs, black_box(&input)).unwrap())
        });
        g.finish();
    }
}

/// A plugin that reads every record's attributes through the attribute index and answers
/// "unchanged", in Rust and in Python (both WebAssembly): `redact-numbers` on the batch
/// without numbers, and `py-sampler` (keeping every batch, after reading each record's
/// `voice.event.type`).
fn python(c: &mut Criterion) {
    let host = PluginHost::new();
    let rust = host
        .load_processor("wasm", &component("redact_numbers.wasm"))
        .expect("load the Rust plugin");
    let path = plugins_dir().join("py_sampler.wasm");
    let py = host
        .load_processor(
            "wasm",
            &ConfigValue::from(serde_json::json!({
                "path": path.display().to_string(),
                "instances": 1,
                "config": { "keep_one_in": 1 },
                "limits": { "memory": "128MiB", "timeout": "10s" },
            })),
        )
        .expect("load the Python plugin");
    let input = batch(false);
    for p in [&rust, &py] {
        assert_eq!(
            p.process(Signal::Logs, &input).unwrap(),
            EncodedOutcome::Unchanged
        );
    }
    let mut g = c.benchmark_group("read_1000_records_unchanged");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("rust_wasm_plugin", |b| {
        b.iter(|| rust.process(Signal::Logs, black_box(&input)).unwrap())
    });
    g.bench_function("python_wasm_plugin", |b| {
        b.iter(|| py.process(Signal::Logs, black_box(&input)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, redaction, python);
criterion_main!(benches);
