//! Test helpers for the OTLP exporters: an `otlp` receiver on free ports, and an exporter made
//! from YAML through its factory.

use std::sync::Arc;
use std::time::Duration;

use lumina_sdk::component::{
    ComponentId, ComponentKind, ConsumeError, Consumer, CreateContext, Exporter, ExporterFactory,
    Receiver, ReceiverOutputs, receiver as receiver_factory,
};
use lumina_sdk::config::parse_yaml;
use lumina_sdk::testkit::{self, FailingConsumer};

use super::OtlpReceiverConfig;

/// An `otlp` receiver on free ports feeding `out` for every signal: (receiver, gRPC port,
/// HTTP port).
pub(crate) async fn receiver(out: Arc<dyn Consumer>) -> (Box<dyn Receiver>, u16, u16) {
    let (g, h) = (testkit::free_port(), testkit::free_port());
    let cfg = parse_yaml(&format!("protocols: {{grpc: {{endpoint: '127.0.0.1:{g}'}}, http: {{endpoint: '127.0.0.1:{h}'}}}}"), "r.yaml").unwrap();
    let mut r = receiver_factory::<OtlpReceiverConfig>()
        .create(
            &cfg,
            CreateContext::new(ComponentId::new("otlp"), ComponentKind::Receiver),
        )
        .await
        .unwrap();
    let outputs = ReceiverOutputs {
        logs: Some(out.clone()),
        traces: Some(out.clone()),
        metrics: Some(out),
    };
    r.start(outputs).await.unwrap();
    (r, g, h)
}

/// Two receivers whose pipelines refuse everything: the first retryably (a full queue asking
/// for 2 s), the second for good (invalid data).
pub(crate) async fn refusing_receivers() -> [(Box<dyn Receiver>, u16, u16); 2] {
    let full = ConsumeError::Backpressure {
        component: "q".into(),
        retry_after: Duration::from_secs(2),
    };
    [
        receiver(Arc::new(FailingConsumer(full))).await,
        receiver(Arc::new(FailingConsumer(ConsumeError::rejected(
            "p", "bad data",
        ))))
        .await,
    ]
}

/// An exporter of `factory`'s type from `yaml`, validated first.
pub(crate) async fn exporter(factory: &dyn ExporterFactory, yaml: &str) -> Arc<dyn Exporter> {
    let cfg = parse_yaml(yaml, "e.yaml").unwrap();
    factory.validate(&cfg).unwrap();
    factory
        .create(
            &cfg,
            CreateContext::new(ComponentId::new("x"), ComponentKind::Exporter),
        )
        .await
        .unwrap()
}
