//! One processor, written once against the plugin SDK (`examples/redact-numbers`, unchanged),
//! in all three forms: compiled in and registered as a built-in, loaded as a native library,
//! and loaded as a WebAssembly component. The same cases run through each, and each gives the
//! same answer.

use std::sync::Arc;

use lumina_collector::service::Host;
use lumina_sdk::component::{
    ComponentId, ComponentKind, CreateContext, Processor, ProcessorFactory, plugin_processor,
};
use lumina_sdk::config::ConfigValue;
use lumina_sdk::proto::collector::trace::v1::ExportTraceServiceRequest;
use lumina_sdk::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use lumina_sdk::testkit::{self, CollectingConsumer, kv};
use lumina_sdk::{Batch, Payload, Signal};
use redact_numbers::RedactNumbers;
use serde_json::{Value, json};

use crate::harness::plugin;

/// One way of running the processor: its factory and how its settings are written.
struct Form {
    name: &'static str,
    factory: Arc<dyn ProcessorFactory>,
    /// The component config for the plugin's own settings.
    config: Box<dyn Fn(&Value) -> Value>,
}

fn forms(host: &Host) -> Vec<Form> {
    let loaded = |path: std::path::PathBuf| move |settings: &Value| json!({ "path": path.display().to_string(), "config": settings });
    vec![
        Form {
            name: "compiled in",
            factory: plugin_processor::<RedactNumbers>(
                "redact_numbers",
                "Masks phone numbers (compiled in).",
            ),
            config: Box::new(Value::clone),
        },
        Form {
            name: "native",
            factory: host.registry.processor("native").unwrap().clone(),
            config: Box::new(loaded(plugin("libredact_numbers.so"))),
        },
        Form {
            name: "WebAssembly",
            factory: host.registry.processor("wasm").unwrap().clone(),
            config: Box::new(loaded(plugin("redact_numbers.wasm"))),
        },
    ]
}

async fn create(
    form: &Form,
    settings: &Value,
    signal: Signal,
) -> (Arc<dyn Processor>, Arc<CollectingConsumer>) {
    let config = ConfigValue::from((form.config)(settings));
    form.factory
        .validate(&config)
        .unwrap_or_else(|e| panic!("{}: {e}", form.name));
    let out = Arc::new(CollectingConsumer::new());
    let mut ctx = CreateContext::new(ComponentId::new("redact"), ComponentKind::Processor);
    ctx.pipeline = Some(signal.to_string());
    let p = form
        .factory
        .create(&config, ctx, signal, out.clone())
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", form.name));
    (p, out)
}

fn call(attrs: &[(&str, &str)]) -> Batch {
    let Payload::Logs(mut req) = testkit::logs(1, 1).into_payload() else {
        unreachable!()
    };
    req.resource_logs[0].scope_logs[0].log_records[0].attributes =
        attrs.iter().map(|(k, v)| kv(k, *v)).collect();
    Batch::logs(req)
}

fn span(attrs: &[(&str, &str)]) -> Batch {
    Batch::traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    name: "call".into(),
                    attributes: attrs.iter().map(|(k, v)| kv(k, *v)).collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// What a form made of one case: the batches passed on, or the error.
#[derive(Debug, PartialEq)]
enum Outcome {
    Passed(Vec<Batch>),
    Refused { retryable: bool },
}

async fn run(form: &Form, settings: &Value, batch: Batch) -> Outcome {
    let (p, out) = create(form, settings, batch.signal()).await;
    let outcome = match p.consume(batch).await {
        Ok(_) => Outcome::Passed(out.batches()),
        Err(e) => Outcome::Refused {
            retryable: e.is_retryable(),
        },
    };
    p.shutdown().await.unwrap();
    outcome
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_processor_compiled_in_native_and_webassembly_gives_the_same_answers() {
    let host = Host::builtin();
    let forms = forms(&host);
    let numbers = [
        ("voice.caller.number", "+442012345678"),
        ("voice.called.number", "020 7946 0018"),
        ("other", "+441234567890"),
    ];
    let cases = [
        (
            "default settings mask the caller and called numbers of a log record",
            json!({}),
            call(&numbers),
            Outcome::Passed(vec![call(&[
                ("voice.caller.number", "+********5678"),
                ("voice.called.number", "*** **** 0018"),
                ("other", "+441234567890"),
            ])]),
        ),
        (
            "spans are masked too",
            json!({}),
            span(&numbers[..1]),
            Outcome::Passed(vec![span(&[("voice.caller.number", "+********5678")])]),
        ),
        (
            "a batch with nothing to mask passes unchanged",
            json!({ "keep_last": 20 }),
            call(&numbers),
            Outcome::Passed(vec![call(&numbers)]),
        ),
        (
            "custom attributes, digits kept and mask",
            json!({ "attributes": ["phone"], "keep_last": 2, "mask": "#" }),
            call(&[("phone", "12345")]),
            Outcome::Passed(vec![call(&[("phone", "###45")])]),
        ),
        (
            "metrics, which it does not handle, pass untouched",
            json!({}),
            testkit::metrics(1, 1),
            Outcome::Passed(vec![testkit::metrics(1, 1)]),
        ),
    ];
    for (what, settings, batch, want) in cases {
        for form in &forms {
            let got = run(form, &settings, batch.clone()).await;
            assert_eq!(got, want, "{what}: {} form", form.name);
        }
    }
    // The plugin's own config checks, in every form, at the key that is wrong.
    for form in &forms {
        let config = ConfigValue::from((form.config)(&json!({ "mask": "xx", "keep": 1 })));
        let e = form.factory.validate(&config).unwrap_err().to_string();
        assert!(
            e.contains("mask: ") && e.contains("must be one character, got `xx`"),
            "{}: {e}",
            form.name
        );
        assert!(
            e.contains("did you mean `keep_last`?"),
            "{}: {e}",
            form.name
        );
    }
}
